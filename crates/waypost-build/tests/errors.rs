//! One snapshot per build error: each case is a tiny app under `tests/fixtures/errors/<case>`,
//! and the snapshot pins the exact message a developer would see.

use std::path::Path;

fn errors_of(case: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/errors")
        .join(case);
    match waypost_build::scan(&root, Path::new("src/app")) {
        Ok(table) => panic!("`{case}` scanned without errors: {table:#?}"),
        Err(errors) => errors.to_string(),
    }
}

#[test]
fn two_route_files_for_one_url_name_both_files() {
    insta::assert_snapshot!(errors_of("duplicate_url"));
}

#[test]
fn optional_catch_all_overlapping_a_route_names_both_files() {
    insta::assert_snapshot!(errors_of("optional_catch_all_overlaps_route"));
}

#[test]
fn sibling_dynamic_folders_with_different_names_are_rejected() {
    insta::assert_snapshot!(errors_of("sibling_dynamic_folders"));
}

#[test]
fn param_beside_catch_all_is_rejected() {
    insta::assert_snapshot!(errors_of("sibling_param_and_catch_all"));
}

#[test]
fn dynamic_folders_in_different_groups_still_clash() {
    insta::assert_snapshot!(errors_of("dynamic_folders_across_groups"));
}

#[test]
fn route_below_a_catch_all_names_route_and_catch_all() {
    insta::assert_snapshot!(errors_of("catch_all_not_last"));
}

#[test]
fn route_without_handler_is_rejected() {
    insta::assert_snapshot!(errors_of("no_handler"));
}

#[test]
fn handler_that_is_not_async_is_rejected() {
    insta::assert_snapshot!(errors_of("handler_not_async"));
}

#[test]
fn handler_that_is_not_pub_is_rejected() {
    insta::assert_snapshot!(errors_of("handler_not_public"));
}

#[test]
fn invalid_parameter_names_are_all_reported() {
    insta::assert_snapshot!(errors_of("invalid_param_names"));
}

#[test]
fn static_and_group_names_must_be_url_safe() {
    insta::assert_snapshot!(errors_of("invalid_static_names"));
}

#[test]
fn parameter_declared_twice_on_one_path_is_rejected() {
    insta::assert_snapshot!(errors_of("duplicate_param"));
}

#[test]
fn unparsable_file_is_reported_with_line_and_column() {
    insta::assert_snapshot!(errors_of("parse_error"));
}

#[test]
fn middleware_without_pub_async_fn_middleware_is_rejected() {
    insta::assert_snapshot!(errors_of("middleware_without_entry_point"));
}

#[test]
fn folders_that_become_the_same_module_are_rejected() {
    insta::assert_snapshot!(errors_of("module_name_collision"));
}

#[test]
fn private_config_is_rejected_rather_than_ignored() {
    insta::assert_snapshot!(errors_of("config_not_public"));
}

#[test]
fn missing_app_folder_is_reported() {
    insta::assert_snapshot!(errors_of("missing_app_dir"));
}

#[test]
fn handlers_the_router_could_not_mount_are_rejected() {
    insta::assert_snapshot!(errors_of("unmountable_handlers"));
}

#[test]
fn re_exported_handlers_and_config_are_rejected_rather_than_ignored() {
    insta::assert_snapshot!(errors_of("re_exports"));
}

#[test]
fn a_config_of_another_type_is_rejected() {
    insta::assert_snapshot!(errors_of("config_of_another_type"));
}

#[test]
fn a_symlink_loop_is_reported_instead_of_walked_for_ever() {
    // Made here rather than committed: a looping link in the repository would trip every tool
    // that walks it.
    let root = std::env::temp_dir().join(format!("waypost-symlink-loop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let app = root.join("src/app");
    std::fs::create_dir_all(app.join("a/b")).unwrap();
    std::fs::write(app.join("a/route.rs"), "pub async fn get() {}\n").unwrap();
    // Two links back up: walked naively, the tree doubles at each level.
    std::os::unix::fs::symlink("..", app.join("a/up")).unwrap();
    std::os::unix::fs::symlink("../..", app.join("a/b/top")).unwrap();
    let errors = match waypost_build::scan(&root, Path::new("src/app")) {
        Ok(table) => panic!("a looping tree scanned without errors: {table:#?}"),
        Err(errors) => errors.to_string(),
    };
    std::fs::remove_dir_all(&root).unwrap();
    insta::assert_snapshot!(errors);
}

#[test]
fn every_error_in_a_tree_is_reported_at_once() {
    insta::assert_snapshot!(errors_of("many_errors"));
}

#[test]
fn a_path_that_reads_another_number_of_values_than_the_route_has_is_rejected() {
    insta::assert_snapshot!(errors_of("path_arity"));
}
