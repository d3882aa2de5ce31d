#[jadeite::service(rolez = ["cashier"])]
trait Vault {
    async fn open(&self) -> bool;
}

fn main() {}
