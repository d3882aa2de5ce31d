#[jadeite::service]
trait Vault {
    type Key;
    async fn open(&self) -> bool;
}

fn main() {}
