#[jadeite::service]
trait Numbers {
    async fn all(&self) -> impl Iterator<Item = u32>;
}

fn main() {}
