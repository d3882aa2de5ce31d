struct Opaque;

#[jadeite::service]
trait Vault {
    async fn open(&self, key: Opaque) -> bool;
}

fn main() {}
