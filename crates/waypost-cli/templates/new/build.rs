//! Turns the folder tree under `src/app` into the app's router (see `waypost_build`); cargo
//! reruns it whenever a file there is added, removed or changed.

fn main() {
    waypost_build::Builder::new()
        .state_type("crate::AppState")
        .build();
}
