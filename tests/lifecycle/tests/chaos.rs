//! The release gate's chaos cases (see [`archipelago_lifecycle::chaos`]) on
//! a real nspawn node running the daemon from its `.deb`: each must leave
//! the node converged with nothing lost. Prints the table; any red cell
//! fails the test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use archipelago_harness::testing::{nothing_left, serial};
use archipelago_lifecycle::{Lab, Matrix, chaos};
use std::time::Instant;

#[test]
fn the_node_converges_and_loses_nothing_in_every_chaos_case() {
    let _one = serial();
    let mut matrix = Matrix::default();
    let wall = Instant::now();
    {
        let lab = Lab::start().unwrap();
        let result = lab.block_on(chaos::run(&lab, &mut matrix)).unwrap();
        if let Err(e) = &result {
            eprintln!("--- daemon log:\n{}", lab.daemon_log());
            eprintln!("stopped at: {e:#}");
        }
    }
    eprintln!(
        "\nchaos cases, wall time {:.1?}:\n\n{}",
        wall.elapsed(),
        matrix.markdown()
    );
    for f in matrix.failures() {
        eprintln!("FAILED {f}");
    }
    nothing_left().unwrap();
    assert!(matrix.green(), "red cells: {:#?}", matrix.failures());
    assert_eq!(matrix.cells.len(), 9, "every case ran");
}
