//! Tauri's build step for the minimal window (`src/main.rs`): checks
//! `tauri.conf.json` and `capabilities/`, embeds `minimal-dist/`.

fn main() {
    tauri_build::build();
}
