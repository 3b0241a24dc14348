//! Turns `src/app` into the route table and router (see `waypost_build`).

fn main() {
    waypost_build::Builder::new()
        .state_type("crate::state::AppState")
        .build();
}
