//! The release gate's chaos cases (see [`archipelago_lifecycle::chaos`]) on
//! a real nspawn node running the daemon from its `.deb`: each must leave
//! the node converged with nothing lost. Prints the table; any red cell
//! fails the test.

#![allow(clippy::unwrap_used)]

use archipelago_lifecycle::{chaos, run_alone};

#[test]
fn the_node_converges_and_loses_nothing_in_every_chaos_case() {
    let m = run_alone("chaos cases", |lab, m| Box::pin(chaos::run(lab, m))).unwrap();
    assert!(m.green(), "red cells: {:#?}", m.failures());
    assert_eq!(m.cells.len(), 10, "every case ran");
}
