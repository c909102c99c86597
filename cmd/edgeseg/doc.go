// Command edgeseg wires the packages into the running proxy and the tools
// around it:
//
//	edgeseg serve         --config FILE             run the proxy
//	edgeseg demo          [--config FILE]           run the proxy on the bundled demo shop
//	edgeseg validate      --config FILE             check config, rules and templates (exit 1 on error)
//	edgeseg explain       --config FILE --url URL   show signals, rules, segments and blocks for one request
//	edgeseg preview-token --config FILE --segment S mint a token that forces a segment
//	edgeseg report        --events FILE...          segment sizes, overlap and uplift from event logs
//
// The Main type holds one invocation; tests drive the whole proxy through it.
package main
