package httpapi

import (
	"embed"
	"net/http"
)

// openAPIFile is the OpenAPI 3.1 description of every route of this package
// (and of /metrics, which the server adds). openapi_test.go checks it against
// Patterns and against the answers of a running server, so a handler that
// drifts from it fails the tests.
const openAPIFile = "openapi.json"

//go:embed openapi.json
var openAPIFS embed.FS

// OpenAPI returns the OpenAPI document served at GET /api/openapi.json.
func OpenAPI() []byte {
	data, err := openAPIFS.ReadFile(openAPIFile)
	if err != nil {
		// The file is embedded at build time: reading it cannot fail.
		panic(err)
	}
	return data
}

func serveOpenAPI(doc []byte) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
		return nil
	}
}
