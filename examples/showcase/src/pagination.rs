//! Page-based listing: the `?page&limit` rules and the `pagination` object every list returns.

use garde::Validate;
use serde::{Deserialize, Serialize};

/// Where a page stands in the whole listing.
#[derive(schemars::JsonSchema, Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    /// 1-based page number.
    pub page: u32,
    /// Items per page.
    pub limit: u32,
    /// Items in the whole listing.
    pub total: u64,
    /// Pages in the whole listing.
    pub total_pages: u64,
}

impl Pagination {
    /// The pagination of page `page` of `limit` items out of `total`.
    pub fn new(page: u32, limit: u32, total: u64) -> Self {
        Self {
            page,
            limit,
            total,
            total_pages: total.div_ceil(u64::from(limit.max(1))),
        }
    }
}

/// `?page&limit`: page ≥ 1 (default 1), limit 1–100 (default 10).
#[derive(schemars::JsonSchema, Clone, Copy, Debug, Deserialize, Validate)]
pub struct PageParams {
    /// 1-based page.
    #[garde(range(min = 1))]
    pub page: Option<u32>,
    /// Items per page.
    #[garde(range(min = 1, max = 100))]
    pub limit: Option<u32>,
}

impl PageParams {
    /// The page asked for, 1 when absent.
    pub fn page(&self) -> u32 {
        self.page.unwrap_or(1)
    }

    /// The page size asked for, 10 when absent.
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(10)
    }
}
