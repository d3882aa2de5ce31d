#[jadeite::service]
trait Vault {
    async fn open(&self, code: u32, cx: &jadeite::CallContext) -> bool;
}

fn main() {}
