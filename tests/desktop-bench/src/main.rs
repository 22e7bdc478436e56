//! A hello-world Tauri 2 window: one window, one static page, no commands.
//! The desktop benchmark measures it beside the Archipelago app, as the
//! floor of what any Tauri window costs.

fn main() -> std::process::ExitCode {
    match tauri::Builder::default().run(tauri::generate_context!()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tauri-minimal-window: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
