//! The conformance suite run against every backend.

/// Generates one `#[tokio::test]` per conformance function for a harness expression.
macro_rules! conformance_tests {
    ($harness:expr, $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let harness = $harness;
                enishi::commerce::conformance::$name(&harness).await;
            }
        )*
    };
}

macro_rules! all_conformance_tests {
    ($harness:expr) => {
        conformance_tests!(
            $harness,
            paging_completeness,
            ordering_and_page_cursors,
            same_second_ties,
            paging_under_concurrent_changes,
            incremental_cursor,
            resume_from_page_cursor,
            empty_read,
            get_customer_and_not_found,
            orders_with_items,
            line_link_write_back,
            grant_points_or_not_implemented,
            optional_streams,
            unauthenticated,
        );
    };
}

mod memory {
    all_conformance_tests!(enishi::commerce::conformance::MemoryHarness::new());
}

mod memory_minimal {
    all_conformance_tests!(enishi::commerce::conformance::MemoryHarness::with_capabilities(
        enishi::commerce::Capabilities::none()
    ));
}

#[cfg(feature = "ecforce")]
mod ecforce {
    all_conformance_tests!(super::super::ecforce::EcforceHarness::start().await);
}
