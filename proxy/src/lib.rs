//! kube-proxy: Services + EndpointSlices + node → rule table (sans-IO). Filled by the data-path issue.
