use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use serde_json::json;

use super::*;

const VALUE_RULE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const NAME_RULE: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const SUBDOMAIN_RULE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn parses_and_renders_canonically() {
    let cases = [
        ("", ""),
        ("x=a,y=b,z=c", "x=a,y=b,z=c"),
        ("x!=a,y=b", "x!=a,y=b"),
        ("x=", "x="),
        ("x= ", "x="),
        ("x=,z= ", "x=,z="),
        ("x= ,z= ", "x=,z="),
        ("!x", "!x"),
        ("x>1", "x>1"),
        ("x>1,z<5", "x>1,z<5"),
        ("x=a,a=x", "a=x,x=a"),
        ("a==b", "a==b"),
        (" x in ( c , b,b ) , y notin () ", "x in (b,c),y notin ()"),
        ("x in (,a)", "x in (,a)"),
        ("x in (a,,b)", "x in (,a,b)"),
        ("x in (a,)", "x in (,a)"),
        ("in in (in)", "in in (in)"),
        ("notin=in", "notin=in"),
        ("example.com/app", "example.com/app"),
        ("\tenv\n!=\rprod", "env!=prod"),
    ];
    for (input, want) in cases {
        let sel = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(sel.to_string(), want, "{input:?}");
    }
}

#[test]
fn parse_errors_use_upstream_text() {
    let cases: Vec<(&str, String)> = vec![
        ("x==a==b", "found '==', expected: ',' or 'end of string'".into()),
        ("!x=a", "found '=', expected: ',' or 'end of string'".into()),
        ("a,", "found '', expected: identifier after ','".into()),
        (",a", "found ',', expected: !, identifier, or 'end of string'".into()),
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt".into()),
        ("a=b c", "found 'c', expected: ',' or 'end of string'".into()),
        ("x (a)", "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt".into()),
        ("x in a", "unable to parse requirement: found 'a' expected: '('".into()),
        ("x in (a", "unable to parse requirement: found '', expected: ',' or ')'".into()),
        ("x in (a,", "unable to parse requirement: found '', expected: ',', or identifier".into()),
        ("x in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier".into()),
        ("x=(", "unable to parse requirement: found '(', expected: identifier".into()),
        ("!", "unable to parse requirement: found '', expected: identifier".into()),
        (
            "x<a",
            "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer".into(),
        ),
        ("x=a||y=b", format!("unable to parse requirement: values[0][x]: Invalid value: \"a||y\": {VALUE_RULE}")),
        ("x>-5", format!("unable to parse requirement: values[0][x]: Invalid value: \"-5\": {VALUE_RULE}")),
        (
            "x>a@",
            format!(
                "unable to parse requirement: [values[0]: Invalid value: \"a@\": for 'Gt', 'Lt' operators, the value must be an integer, values[0][x]: Invalid value: \"a@\": {VALUE_RULE}]"
            ),
        ),
        ("a@b", format!("unable to parse requirement: <nil>: Invalid value: \"a@b\": name part {NAME_RULE}")),
        (
            "a/b/c=d",
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name {NAME_RULE} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ),
        ),
        ("Foo.com/x", format!("unable to parse requirement: <nil>: Invalid value: \"Foo.com/x\": prefix part {SUBDOMAIN_RULE}")),
        ("/x", "unable to parse requirement: <nil>: Invalid value: \"/x\": prefix part must be non-empty".into()),
        (
            "x/",
            format!("unable to parse requirement: <nil>: Invalid value: \"x/\": name part must be non-empty; name part {NAME_RULE}"),
        ),
    ];
    for (input, want) in cases {
        let err = LabelSelector::parse(input).expect_err(input);
        assert_eq!(err.to_string(), want, "{input:?}");
        let api: ApiError = err.into();
        assert_eq!((api.code(), api.reason()), (400, "BadRequest"));
        assert_eq!(api.message(), want);
    }
}

#[test]
fn parse_rejects_overlong_values() {
    let long = "a".repeat(64);
    let err = LabelSelector::parse(&format!("x={long}")).expect_err("too long");
    assert_eq!(
        err.to_string(),
        format!(
            "unable to parse requirement: values[0][x]: Invalid value: \"{long}\": must be no more than 63 characters"
        )
    );
}

/// A selector, a label set, and whether the one matches the other.
type MatchCase<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);

#[test]
fn matches_like_upstream() {
    let cases: &[MatchCase] = &[
        ("", &[("x", "y")], true),
        ("x=y", &[("x", "y")], true),
        ("x=y,z=w", &[("x", "y"), ("z", "w")], true),
        ("x!=y,z!=w", &[("x", "z"), ("z", "a")], true),
        ("notin=in", &[("notin", "in")], true),
        ("x", &[("x", "z")], true),
        ("!x", &[("y", "z")], true),
        ("x>1", &[("x", "2")], true),
        ("x<1", &[("x", "0")], true),
        ("x!=y", &[], true),
        ("x notin (a)", &[], true),
        ("x in (a,b)", &[("x", "b")], true),
        ("x=", &[("x", "")], true),
        ("x=z", &[], false),
        ("x=y", &[("x", "z")], false),
        ("x=y,z=w", &[("x", "w"), ("z", "w")], false),
        ("x!=y,z!=w", &[("x", "z"), ("z", "w")], false),
        ("x", &[("y", "z")], false),
        ("!x", &[("x", "z")], false),
        ("x>1", &[("x", "0")], false),
        ("x<1", &[("x", "2")], false),
        ("x>1", &[("x", "a")], false),
        ("x>1", &[], false),
        ("x notin (a)", &[("x", "a")], false),
        ("x in (a,b)", &[("x", "c")], false),
        ("x=", &[], false),
    ];
    for (selector, labels, want) in cases {
        let sel = LabelSelector::parse(selector).expect(selector);
        assert_eq!(
            sel.matches(&set(labels)),
            *want,
            "{selector:?} on {labels:?}"
        );
    }
}

#[test]
fn matches_json_object_labels() {
    let sel = LabelSelector::parse("app=web,tier notin (db)").expect("valid");
    assert!(sel.matches_object(&json!({"metadata": {"labels": {"app": "web"}}})));
    assert!(!sel.matches_object(&json!({"metadata": {"labels": {"app": "web", "tier": "db"}}})));
    assert!(!sel.matches_object(&json!({"metadata": {}})));
    assert!(LabelSelector::everything().matches_object(&json!({})));
    assert!(!LabelSelector::nothing().matches_object(&json!({"metadata": {"labels": {}}})));
}

#[test]
fn null_api_selector_matches_nothing_and_empty_matches_everything() {
    let nothing = LabelSelector::from_api(None).expect("valid");
    assert!(nothing.is_nothing() && !nothing.is_empty());
    assert!(!nothing.matches(&set(&[])));
    assert_eq!(nothing.to_string(), "");

    let everything =
        LabelSelector::from_api(Some(&metav1::LabelSelector::default())).expect("valid");
    assert!(everything.is_empty() && !everything.is_nothing());
    assert!(everything.matches(&set(&[("a", "b")])));
}

fn expr(key: &str, op: &str, values: Option<&[&str]>) -> metav1::LabelSelectorRequirement {
    metav1::LabelSelectorRequirement {
        key: key.into(),
        operator: op.into(),
        values: values.map(|v| v.iter().map(|s| s.to_string()).collect()),
    }
}

#[test]
fn converts_api_selectors() {
    let api = metav1::LabelSelector {
        match_labels: Some(set(&[("b", "2"), ("a", "1")])),
        match_expressions: Some(vec![
            expr("c", "In", Some(&["z", "y"])),
            expr("d", "DoesNotExist", None),
            expr("e", "NotIn", Some(&["q"])),
            expr("f", "Exists", Some(&[])),
        ]),
    };
    let sel = LabelSelector::from_api(Some(&api)).expect("valid");
    assert_eq!(sel.to_string(), "a=1,b=2,c in (y,z),!d,e notin (q),f");
    assert!(sel.matches(&set(&[("a", "1"), ("b", "2"), ("c", "y"), ("f", "")])));
    assert!(!sel.matches(&set(&[("a", "1"), ("b", "2"), ("c", "y")])));
}

#[test]
fn api_selector_errors_use_upstream_text() {
    let with = |exprs: Vec<metav1::LabelSelectorRequirement>, labels: &[(&str, &str)]| {
        metav1::LabelSelector {
            match_labels: Some(set(labels)),
            match_expressions: Some(exprs),
        }
    };
    let cases: Vec<(metav1::LabelSelector, String)> = vec![
        (with(vec![expr("a", "Foo", None)], &[]), "\"Foo\" is not a valid label selector operator".into()),
        (
            with(vec![expr("a", "In", None)], &[]),
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty".into(),
        ),
        (
            with(vec![expr("a", "Exists", Some(&["x"]))], &[]),
            "values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not exist".into(),
        ),
        (with(vec![], &[("k", "a b")]), format!("values[0][k]: Invalid value: \"a b\": {VALUE_RULE}")),
        (with(vec![], &[("k k", "v")]), format!("key: Invalid value: \"k k\": name part {NAME_RULE}")),
    ];
    for (api, want) in cases {
        let err = LabelSelector::from_api(Some(&api)).expect_err(&want);
        assert_eq!(err.to_string(), want);
    }
}

#[test]
fn requirement_constructor_validates_counts() {
    let long = "a".repeat(254);
    let cases: Vec<(&str, Operator, Vec<&str>, Option<String>)> = vec![
        ("x1", Operator::In, vec![], Some("values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty".into())),
        ("x3", Operator::In, vec!["foo"], None),
        (
            "x5",
            Operator::Equals,
            vec!["foo", "bar"],
            Some("values: Invalid value: []string{\"foo\", \"bar\"}: exact-match compatibility requires one single value".into()),
        ),
        ("x6", Operator::Exists, vec![], None),
        ("x11", Operator::GreaterThan, vec!["1"], None),
        (
            "x13",
            Operator::GreaterThan,
            vec![],
            Some("values: Invalid value: []string{}: for 'Gt', 'Lt' operators, exactly one value is required".into()),
        ),
        (
            long.as_str(),
            Operator::Exists,
            vec![],
            Some(format!("key: Invalid value: \"{long}\": name part must be no more than 63 characters")),
        ),
    ];
    for (key, op, values, want) in cases {
        let got = Requirement::new(key, op, values.into_iter().map(String::from).collect());
        assert_eq!(got.err().map(|e| e.to_string()), want, "{key}");
    }
}

#[test]
fn exact_match_introspection() {
    let sel = LabelSelector::parse("a=b,c in (d),e in (f,g),h!=i,j==k").expect("valid");
    assert_eq!(sel.requires_exact_match("a"), Some("b"));
    assert_eq!(sel.requires_exact_match("c"), Some("d"));
    assert_eq!(sel.requires_exact_match("e"), None);
    assert_eq!(sel.requires_exact_match("h"), None);
    assert_eq!(sel.requires_exact_match("j"), Some("k"));
    assert_eq!(sel.requires_exact_match("z"), None);
}

#[test]
fn from_map_requires_every_label() {
    let sel = LabelSelector::from_map(&set(&[("b", "2"), ("a", "1")]));
    assert_eq!(sel.to_string(), "a=1,b=2");
    assert!(sel.matches(&set(&[("a", "1"), ("b", "2"), ("c", "3")])));
    assert!(!sel.matches(&set(&[("a", "1")])));
    assert!(LabelSelector::from_map(&BTreeMap::new()).is_empty());
}
