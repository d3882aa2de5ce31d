struct Opaque;

#[jadeite::service]
trait Vault {
    async fn open(&self) -> Opaque;
}

fn main() {}
