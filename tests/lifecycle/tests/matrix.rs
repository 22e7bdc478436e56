//! The lifecycle matrix on a real nspawn node running the daemon from its
//! `.deb` (see [`archipelago_lifecycle::cells`]), `ARCHY_ITERATIONS` times
//! (default 1), then the cases that need doing once. Prints the app ×
//! state table; any red cell fails the test.

#![allow(clippy::unwrap_used)]

use archipelago_lifecycle::{cells, iterations, run_alone};

#[test]
fn lifecycle_matrix_on_an_nspawn_node() {
    let n = iterations().unwrap();
    let title = format!("lifecycle matrix, {n} iteration(s)");
    let m = run_alone(&title, |lab, m| Box::pin(cells::run(lab, n, m))).unwrap();
    assert!(m.green(), "red cells: {:#?}", m.failures());
    assert!(!m.cells.is_empty());
}
