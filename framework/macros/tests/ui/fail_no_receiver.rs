#[jadeite::service]
trait Factory {
    async fn make(count: u32) -> u64;
}

fn main() {}
