//! Turns `src/app` into the route table and router (see `waypost_build`).

fn main() {
    // `sqlx::migrate!` embeds them: a new or edited migration must rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");
    waypost_build::Builder::new()
        .state_type("crate::state::AppState")
        .build();
}
