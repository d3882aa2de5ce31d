//! The scripted scenario as four real processes: browse, order, pay, ship,
//! suggest; the logistics platform killed during the second order (paid,
//! shipping pending, shipped once it is back, charged once); the refused
//! attack from the suggestions platform; orders surviving an API restart.

use std::process::{Command, Stdio};

#[test]
fn the_scripted_scenario_passes_every_step() {
    let dir = std::env::temp_dir().join(format!("jadeite-shop-test-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_shop"))
        .args(["--scenario", "--dir"])
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("shop runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let logs = ["api", "payments", "logistics", "suggestions"]
        .iter()
        .map(|p| {
            let log = std::fs::read_to_string(dir.join("logs").join(format!("{p}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            format!(
                "--- {p}.log (last lines, newest first)\n{}",
                tail.join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        output.status.success(),
        "scenario failed\nstdout:\n{stdout}\nstderr:\n{stderr}\n{logs}"
    );
    for expected in [
        "paid, shipping pending",
        "is shipped once logistics is back",
        "charged",
        "refused: access to Payment.charge denied: missing role checkout",
        "orders are still there, 2 shipped",
        "scenario passed",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}"
        );
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
    // The shipping-pending order was charged exactly once.
    assert!(
        stdout.contains("was charged") && stdout.contains("once for the second"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
