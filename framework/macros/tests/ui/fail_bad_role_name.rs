#[jadeite::service]
trait Vault {
    #[roles("head cashier")]
    async fn open(&self) -> bool;
}

fn main() {}
