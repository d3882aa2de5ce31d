#[jadeite::service]
trait Greeter {
    async fn greet(&self) -> String {
        String::new()
    }
}

fn main() {}
