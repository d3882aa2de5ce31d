//! Compile-time behaviour of `#[service]`: supported shapes compile, and each
//! unsupported one fails with an error pointing at the offending method.

#[test]
fn service_shapes() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass_*.rs");
    cases.compile_fail("tests/ui/fail_*.rs");
}
