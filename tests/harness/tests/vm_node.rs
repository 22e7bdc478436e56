//! The VM flavour of the node harness against reality: a qemu VM (TCG,
//! real kernel, real reboot) booted from the node rootfs inside the run's
//! own network namespace, pulling from a real registry over qemu's user
//! network. Needs root, the VM image (`tests/node/build-vm-image.sh`, which
//! also builds the rootfs and installs qemu) and the registry tools
//! (`tests/node/fetch-nspawn.sh`). A missing piece fails the test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use archipelago_harness::network::{self, TestNetwork};
use archipelago_harness::node::{Node, RunAs, SERVICE_HOME};
use archipelago_harness::registry::Registry;
use archipelago_harness::testing::{hello_unit, vm_image, wait_page};
use archipelago_harness::vm::VmNode;
use std::time::{Duration, Instant};

/// systemd's "Startup finished in …" line of the current boot.
fn startup(node: &VmNode) -> String {
    let out = node.exec(RunAs::Root, &["systemd-analyze"]).unwrap();
    out.stdout.lines().next().unwrap_or_default().to_owned()
}

/// What a freshly booted VM node must be: the node's own kernel, commands
/// as root and as the service user, and no image pre-loaded.
fn check_fresh_node(node: &VmNode) {
    eprintln!("figure: VM guest's own view: {}", startup(node));
    let kernel = node.exec(RunAs::Root, &["uname", "-r"]).unwrap();
    assert!(
        kernel.success() && kernel.stdout.contains("deb13"),
        "{kernel:?}"
    );
    let t = Instant::now();
    assert!(node.exec(RunAs::Root, &["true"]).unwrap().success());
    eprintln!(
        "figure: VM one exec round trip through the guest agent: {:?}",
        t.elapsed()
    );
    let missing = node.exec(RunAs::Root, &["no-such-program"]).unwrap();
    assert_eq!(missing.status, 127, "{missing:?}");
    let who = node.exec(RunAs::ServiceUser, &["id", "-u"]).unwrap();
    assert_eq!(who.stdout.trim(), "1000", "{who:?}");
    // Nothing pre-loaded: the image is not in the node before the start.
    let images = node
        .exec(RunAs::ServiceUser, &["podman", "images", "--quiet"])
        .unwrap();
    assert!(images.success(), "{images:?}");
    assert_eq!(images.stdout.trim(), "", "{images:?}");
}

/// The hand-written Quadlet unit, as the service user.
fn install_unit(node: &VmNode, tag: &str) {
    let dest = format!("{SERVICE_HOME}/.config/containers/systemd/hello.container");
    node.copy_in(
        hello_unit("10.0.2.2:5000", tag).as_bytes(),
        &dest,
        RunAs::ServiceUser,
        0o644,
    )
    .unwrap();
    let st = node
        .exec(RunAs::Root, &["stat", "-c", "%U %a", &dest])
        .unwrap();
    assert_eq!(st.stdout.trim(), "archipelago 644", "{st:?}");
}

#[test]
fn a_vm_node_pulls_a_quadlet_unit_from_the_registry_and_survives_reboot_and_power_cut() {
    let image = vm_image().unwrap();
    {
        let net = TestNetwork::create().unwrap();
        let registry = Registry::start(&net).unwrap();
        let built =
            archipelago_harness::fixtures::build_image(&net.dir().join("images"), "hello-web")
                .unwrap();
        registry
            .push_oci(&built.oci_dir, &built.tag, "archipelago/hello-web")
            .unwrap();

        let start = Instant::now();
        let mut node = VmNode::boot_new(&net, image, 1, &[8080]).unwrap();
        eprintln!(
            "figure: VM boot to user manager up and default route: {:?}",
            start.elapsed()
        );
        check_fresh_node(&node);
        install_unit(&node, &built.tag);

        let start = Instant::now();
        let reload = node
            .exec(
                RunAs::ServiceUser,
                &["systemctl", "--user", "daemon-reload"],
            )
            .unwrap();
        assert!(reload.success(), "{reload:?}");
        let started = node
            .exec(
                RunAs::ServiceUser,
                &["systemctl", "--user", "start", "hello.service"],
            )
            .unwrap();
        assert!(started.success(), "{started:?}");
        wait_page(&net, &node, Duration::from_secs(120)).unwrap();
        eprintln!(
            "figure: VM daemon-reload + start incl. pull -> page: {:?}",
            start.elapsed()
        );
        let pulls = registry.pulls_by(&node.address().to_string(), "archipelago/hello-web");
        assert!(
            pulls.iter().any(|l| l.contains("/manifests/")),
            "no manifest GET from the VM (127.0.0.1) in the registry's log:\n{}",
            registry.log()
        );

        let rebooted = node.reboot().unwrap();
        eprintln!(
            "figure: VM guest's own view after the reboot: {}",
            startup(&node)
        );
        let after = wait_page(&net, &node, Duration::from_secs(120)).unwrap();
        eprintln!(
            "figure: VM reboot to booted {rebooted:?}, then page after {after:?} (total {:?})",
            rebooted + after
        );

        node.power_cut().unwrap();
        let booted = node.boot().unwrap();
        let after = wait_page(&net, &node, Duration::from_secs(120)).unwrap();
        eprintln!(
            "figure: VM power cut, boot {booted:?}, then page after {after:?} (total {:?})",
            booted + after
        );
        let state = node
            .exec(
                RunAs::ServiceUser,
                &["systemctl", "--user", "is-active", "hello.service"],
            )
            .unwrap();
        assert_eq!(state.stdout.trim(), "active", "{state:?}");
    }
    let left = network::leftovers_of_this_process();
    assert!(left.is_empty(), "the run left things behind: {left:#?}");
}
