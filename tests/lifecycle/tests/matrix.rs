//! The lifecycle matrix on a real nspawn node running the daemon from its
//! `.deb` (see [`archipelago_lifecycle::cells`]), `ARCHY_ITERATIONS` times
//! (default 1), then the cases that need doing once. Prints the app ×
//! state table; any red cell fails the test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use archipelago_harness::testing::{nothing_left, serial};
use archipelago_lifecycle::{Lab, Matrix, cells, iterations};
use std::time::Instant;

#[test]
fn lifecycle_matrix_on_an_nspawn_node() {
    let _one = serial();
    let n = iterations().unwrap();
    let mut matrix = Matrix::default();
    let wall = Instant::now();
    {
        let lab = Lab::start().unwrap();
        let result = lab.block_on(cells::run(&lab, n, &mut matrix)).unwrap();
        if let Err(e) = &result {
            eprintln!("--- daemon log:\n{}", lab.daemon_log());
            eprintln!("matrix stopped at: {e:#}");
        }
    }
    eprintln!(
        "\nlifecycle matrix, {n} iteration(s), wall time {:.1?}:\n\n{}",
        wall.elapsed(),
        matrix.markdown()
    );
    for f in matrix.failures() {
        eprintln!("FAILED {f}");
    }
    nothing_left().unwrap();
    assert!(matrix.green(), "red cells: {:#?}", matrix.failures());
    assert!(!matrix.cells.is_empty());
}
