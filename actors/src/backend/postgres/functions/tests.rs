//! Choosing the version of a function a call names.

use super::*;

fn arg(name: &str, has_default: bool) -> FunctionArg {
    FunctionArg {
        name: name.into(),
        type_sql: "integer".into(),
        kind: ValueKind::Scalar,
        has_default,
        variadic: false,
    }
}

fn version(args: Vec<FunctionArg>) -> Arc<FunctionInfo> {
    Arc::new(FunctionInfo {
        schema: "public".into(),
        name: "f".into(),
        args,
        volatility: Volatility::Immutable,
        returns: Returns::Scalar,
        result: TableInfo {
            schema: "public".into(),
            name: "f".into(),
            relkind: 'c',
            columns: vec![],
            primary_key: vec![],
        },
    })
}

#[test]
fn the_version_taking_the_given_names_is_chosen() {
    let set = FunctionSet {
        versions: vec![
            version(vec![arg("a", false)]),
            version(vec![arg("a", false), arg("b", false)]),
        ],
    };
    assert_eq!(set.resolve(&["a"]).unwrap().args.len(), 1);
    assert_eq!(set.resolve(&["a", "b"]).unwrap().args.len(), 2);
    assert!(matches!(
        set.resolve(&["c"]),
        Err(OpError::UnknownArgument { argument, .. }) if argument == "c"
    ));
    assert!(matches!(
        set.resolve(&[]),
        Err(OpError::MissingArgument { argument, .. }) if argument == "a"
    ));
}

#[test]
fn defaults_may_be_omitted_and_ties_are_ambiguous() {
    let one = FunctionSet {
        versions: vec![version(vec![arg("a", false), arg("b", true)])],
    };
    assert!(one.resolve(&["a"]).is_ok());
    let two = FunctionSet {
        versions: vec![
            version(vec![arg("a", true)]),
            version(vec![arg("a", true), arg("b", true)]),
        ],
    };
    assert!(matches!(
        two.resolve(&[]),
        Err(OpError::AmbiguousFunction { candidates: 2, .. })
    ));
    assert_eq!(two.resolve(&["a"]).unwrap().args.len(), 1);
}

#[test]
fn an_unnamed_required_argument_cannot_be_given() {
    let set = FunctionSet {
        versions: vec![version(vec![arg("", false)])],
    };
    assert!(matches!(
        set.resolve(&[]),
        Err(OpError::MissingArgument { .. })
    ));
}
