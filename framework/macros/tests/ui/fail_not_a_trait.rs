#[jadeite::service]
struct Vault;

fn main() {}
