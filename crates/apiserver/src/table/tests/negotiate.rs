use crate::table::{MetaVersion, Output, negotiate, wants_table};

const KUBECTL_GET: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

#[test]
fn kubectl_get_asks_for_a_v1_table() {
    assert_eq!(
        negotiate(Some(KUBECTL_GET)).ok(),
        Some(Output::Table(MetaVersion::V1))
    );
    assert!(wants_table(Some(KUBECTL_GET)));
}

#[test]
fn plain_and_missing_accept_mean_the_object() {
    for accept in [
        None,
        Some(""),
        Some("application/json"),
        Some("*/*"),
        Some("application/json, */*"),
    ] {
        assert_eq!(negotiate(accept).ok(), Some(Output::Object), "{accept:?}");
        assert!(!wants_table(accept));
    }
    // client-go's protobuf clients fall back to JSON.
    assert_eq!(
        negotiate(Some("application/vnd.kubernetes.protobuf,application/json")).ok(),
        Some(Output::Object)
    );
}

#[test]
fn unservable_ranges_are_skipped() {
    let v1beta1_only = "application/json;as=Table;v=v2;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io";
    assert_eq!(
        negotiate(Some(v1beta1_only)).ok(),
        Some(Output::Table(MetaVersion::V1Beta1))
    );
    let not_meta = "application/json;as=Table;v=v1;g=example.com,application/json";
    assert_eq!(negotiate(Some(not_meta)).ok(), Some(Output::Object));
    // `v` alone names no kind upstream can convert to.
    assert_eq!(
        negotiate(Some("application/json;v=v1,application/json")).ok(),
        Some(Output::Object)
    );
}

#[test]
fn q_values_order_ranges() {
    let accept = "application/json;q=0.5,application/json;as=Table;v=v1;g=meta.k8s.io";
    assert_eq!(
        negotiate(Some(accept)).ok(),
        Some(Output::Table(MetaVersion::V1))
    );
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io;q=0.1,application/json";
    assert_eq!(negotiate(Some(accept)).ok(), Some(Output::Object));
}

#[test]
fn partial_object_metadata_ranges() {
    let accept =
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
    assert_eq!(
        negotiate(Some(accept)).ok(),
        Some(Output::PartialObjectMetadataList(MetaVersion::V1))
    );
    let accept = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
    assert_eq!(
        negotiate(Some(accept)).ok(),
        Some(Output::PartialObjectMetadata(MetaVersion::V1))
    );
}

#[test]
fn nothing_servable_is_406() {
    for accept in [
        "application/vnd.kubernetes.protobuf",
        "application/yaml",
        "application/json;as=Table;v=v2;g=meta.k8s.io",
        "application/json;stream=other",
        "text/html",
    ] {
        let err = negotiate(Some(accept)).expect_err(accept);
        assert_eq!(err.code(), 406, "{accept}");
        assert_eq!(err.reason(), "NotAcceptable");
        assert_eq!(err.message(), crate::table::NOT_ACCEPTABLE);
    }
    // A watch stream range is fine.
    assert_eq!(
        negotiate(Some("application/json;stream=watch")).ok(),
        Some(Output::Object)
    );
}
