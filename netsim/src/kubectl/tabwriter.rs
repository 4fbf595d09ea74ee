//! kubectl tabwriter.
