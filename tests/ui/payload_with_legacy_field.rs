// A mission-scoped payload cannot carry a feature-era field: the struct has no such field.
use spec_kitty::contract::types::MissionCreatedPayload;

fn main() {
    let _ = MissionCreatedPayload {
        mission_slug: "001-demo".parse().unwrap(),
        mission_number: std::num::NonZeroU64::new(1).unwrap(),
        mission_type: "software-dev".parse().unwrap(),
        feature_slug: "001-demo".to_string(),
    };
}
