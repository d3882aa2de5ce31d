#[jadeite::service]
trait Vault {
    #[roles("cashier")]
    #[unrestricted]
    async fn open(&self) -> bool;
}

fn main() {}
