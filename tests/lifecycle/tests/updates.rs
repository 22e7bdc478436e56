//! Updates, rollbacks, backups and restores on real nspawn nodes (see
//! [`archipelago_lifecycle::updates`]). Prints the app × state table with
//! each cell's time; any red cell fails the test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use archipelago_harness::testing::{nothing_left, serial};
use archipelago_lifecycle::{Lab, Matrix, updates};
use std::time::Instant;

#[test]
fn updates_rollbacks_backups_and_restores_on_two_nodes() {
    let _one = serial();
    let mut matrix = Matrix::default();
    let wall = Instant::now();
    {
        let lab = Lab::start().unwrap();
        let result = lab.block_on(updates::run(&lab, 2, &mut matrix)).unwrap();
        if let Err(e) = &result {
            eprintln!("--- daemon log:\n{}", lab.daemon_log());
            eprintln!("stopped at: {e:#}");
        }
    }
    eprintln!(
        "\nupdates and backups, wall time {:.1?}:\n\n{}",
        wall.elapsed(),
        matrix.markdown()
    );
    for f in matrix.failures() {
        eprintln!("FAILED {f}");
    }
    nothing_left().unwrap();
    assert!(matrix.green(), "red cells: {:#?}", matrix.failures());
    assert!(matrix.cells.len() >= 12, "{} cells", matrix.cells.len());
}
