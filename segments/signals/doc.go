// Package signals derives the context signals of one request — device,
// browser, OS, bot, local time, referrer class, UTM parameters, geo,
// language, and the cookies, headers and query parameters config lets rules
// read — and decides consent (GPC, DNT, the site's consent cookie).
//
// An Extractor is built once from config and is safe for concurrent use;
// Context values are filled per request and hold copies, never slices of the
// request, so they may outlive it.
package signals
