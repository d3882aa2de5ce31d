#[jadeite::service]
trait Counter {
    async fn bump(&mut self) -> u64;
}

fn main() {}
