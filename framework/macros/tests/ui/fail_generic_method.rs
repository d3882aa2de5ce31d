#[jadeite::service]
trait Store {
    async fn get<T>(&self, key: String) -> u64;
}

fn main() {}
