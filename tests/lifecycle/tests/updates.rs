//! Updates, rollbacks, backups and restores on real nspawn nodes (see
//! [`archipelago_lifecycle::updates`]). Prints the app × state table with
//! each cell's time; any red cell fails the test.

#![allow(clippy::unwrap_used)]

use archipelago_lifecycle::{run_alone, updates};

#[test]
fn updates_rollbacks_backups_and_restores_on_two_nodes() {
    let m = run_alone("updates and backups", |lab, m| {
        Box::pin(updates::run(lab, 2, m))
    })
    .unwrap();
    assert!(m.green(), "red cells: {:#?}", m.failures());
    assert!(m.cells.len() >= 12, "{} cells", m.cells.len());
}
