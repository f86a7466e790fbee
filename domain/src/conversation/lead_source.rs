//! Lead sources: where a conversation came from, recorded when it opens and kept for every
//! metric of that conversation (DOMAIN.md: "a TikTok ad that opened a WhatsApp chat must
//! count as TikTok").
//!
//! Sources are lower-case labels: `direct` (the default), the ad networks `tiktok`,
//! `facebook`, `instagram`, `google`, or `campaign` for a start parameter that names none
//! of them. The raw parameter or ad URL is kept as `detail`.

use serde::{Deserialize, Serialize};

/// The networks recognised in start parameters and ad URLs.
const NETWORKS: [&str; 4] = ["tiktok", "facebook", "instagram", "google"];

/// Longest kept detail (a start payload, an ad URL).
const MAX_DETAIL: usize = 200;

/// Where a conversation came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadSource {
    /// `direct`, `tiktok`, `facebook`, `instagram`, `google` or `campaign`.
    pub source: String,
    /// The start parameter or ad URL it was read from.
    pub detail: Option<String>,
}

impl Default for LeadSource {
    fn default() -> Self {
        Self::direct()
    }
}

impl LeadSource {
    /// No known origin.
    pub fn direct() -> Self {
        Self {
            source: "direct".to_string(),
            detail: None,
        }
    }

    /// From a start parameter (Telegram `/start <payload>`, Viber `conversation_started`
    /// `context`, a WhatsApp prefilled code): a payload beginning with a network's name
    /// (`tiktok_spring24`, `fb-…` is not one) counts for that network, any other non-empty
    /// payload as `campaign`.
    pub fn from_start_parameter(payload: &str) -> Self {
        let payload = payload.trim();
        if payload.is_empty() {
            return Self::direct();
        }
        let lower = payload.to_ascii_lowercase();
        let source = NETWORKS
            .iter()
            .find(|network| lower.starts_with(*network))
            .map_or("campaign", |network| network);
        Self {
            source: source.to_string(),
            detail: Some(payload.chars().take(MAX_DETAIL).collect()),
        }
    }

    /// From a click-to-chat ad's URL (WhatsApp `referral.source_url`): the network whose
    /// name is in the host (`www.tiktok.com`, `fb.me` counts as facebook), else `campaign`.
    pub fn from_ad_url(url: &str) -> Self {
        let host = url
            .split("://")
            .nth(1)
            .unwrap_or(url)
            .split(['/', '?', '#'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let source = if host == "fb.me" || host.ends_with(".fb.me") {
            "facebook"
        } else {
            NETWORKS
                .iter()
                .find(|network| host.contains(*network))
                .map_or("campaign", |network| network)
        };
        Self {
            source: source.to_string(),
            detail: Some(url.chars().take(MAX_DETAIL).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_parameters_name_their_network_or_count_as_a_campaign() {
        assert_eq!(
            LeadSource::from_start_parameter("tiktok_spring24").source,
            "tiktok"
        );
        assert_eq!(
            LeadSource::from_start_parameter("Instagram-bio").source,
            "instagram"
        );
        assert_eq!(
            LeadSource::from_start_parameter("flyer42").source,
            "campaign"
        );
        assert_eq!(LeadSource::from_start_parameter("  "), LeadSource::direct());
        assert_eq!(
            LeadSource::from_start_parameter("tiktok_x")
                .detail
                .as_deref(),
            Some("tiktok_x")
        );
    }

    #[test]
    fn ad_urls_count_for_the_network_in_their_host() {
        assert_eq!(
            LeadSource::from_ad_url("https://www.tiktok.com/@cafe/video/1").source,
            "tiktok"
        );
        assert_eq!(
            LeadSource::from_ad_url("https://fb.me/2abc").source,
            "facebook"
        );
        assert_eq!(
            LeadSource::from_ad_url("https://example.com/?tiktok").source,
            "campaign"
        );
    }
}
