//! Tests of the setup diagnosis.

use super::*;

fn ok() -> Facts {
    Facts {
        wal_level: "logical".into(),
        may_replicate: true,
        max_slots: 10,
        used_slots: 3,
        slot: None,
        may_create: true,
        database: "app".into(),
        user: "athena".into(),
        publication_exists: false,
        version_num: 150_020,
    }
}

#[test]
fn a_ready_database_has_no_problem() {
    assert_eq!(diagnose(&ok(), "athena_cdc_app"), None);
    let mine = Facts {
        slot: Some(("app".into(), "pgoutput".into(), "logical".into())),
        used_slots: 10,
        ..ok()
    };
    assert_eq!(diagnose(&mine, "athena_cdc_app"), None);
}

#[test]
fn each_problem_names_the_setting_and_the_command_that_fixes_it() {
    let p = diagnose(
        &Facts {
            wal_level: "replica".into(),
            ..ok()
        },
        "s",
    )
    .unwrap();
    assert!(p.what.contains("wal_level is replica"), "{p:?}");
    assert!(
        p.fix.contains("ALTER SYSTEM SET wal_level = logical")
            && p.fix.contains("pg_ctlcluster 15 main restart"),
        "{p:?}"
    );

    let p = diagnose(
        &Facts {
            may_replicate: false,
            ..ok()
        },
        "s",
    )
    .unwrap();
    assert_eq!(
        p.fix,
        "as a superuser: ALTER ROLE \"athena\" WITH REPLICATION;"
    );

    let p = diagnose(
        &Facts {
            used_slots: 10,
            ..ok()
        },
        "s",
    )
    .unwrap();
    assert!(
        p.what.contains("all 10 replication slots are in use"),
        "{p:?}"
    );
    assert!(p.fix.contains("max_replication_slots = 20"), "{p:?}");

    let other = Facts {
        slot: Some(("other".into(), "pgoutput".into(), "logical".into())),
        ..ok()
    };
    let p = diagnose(&other, "athena_cdc_app").unwrap();
    assert!(
        p.fix.contains("pg_drop_replication_slot('athena_cdc_app')"),
        "{p:?}"
    );

    let p = diagnose(
        &Facts {
            may_create: false,
            ..ok()
        },
        "s",
    )
    .unwrap();
    assert!(
        p.fix
            .contains("GRANT CREATE ON DATABASE \"app\" TO \"athena\""),
        "{p:?}"
    );
    assert_eq!(
        diagnose(
            &Facts {
                may_create: false,
                publication_exists: true,
                ..ok()
            },
            "s"
        ),
        None
    );

    let p = diagnose(
        &Facts {
            version_num: 100_005,
            ..ok()
        },
        "s",
    )
    .unwrap();
    assert!(p.fix.contains("11 or later"));
}

#[test]
fn identifiers_are_quoted() {
    assert_eq!(ident("a\"b"), "\"a\"\"b\"");
}
