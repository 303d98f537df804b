package gateway

import (
	"bytes"
	"image/png"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"rsc.io/qr"

	"supportgate/gateway/identity"
	"supportgate/web"
)

// The web pages: the customer consent page, the staff console and the
// enrollment page, with their scripts and stylesheet. The pages are static
// files from package web; they fetch everything they show from the API,
// so no page route reads a token or a cookie itself.

func init() { routeSets = append(routeSets, (*Gateway).pageRoutes) }

func (g *Gateway) pageRoutes() []route {
	return []route{
		{"GET", "/console", public, servePage("console.html")},
		{"GET", "/c/{token}", public, servePage("consent.html")},
		{"GET", "/enroll/{token}", public, servePage("enroll.html")},
		{"GET", "/static/{file}", public, serveStatic},
		{"GET", "/api/v1/enroll/{token}/qr.png", public, g.handleEnrollQR},
	}
}

// assetTypes are the content types of the files under web/static; a file
// of any other kind is not served (nosniff makes the type matter).
var assetTypes = map[string]string{
	".css": "text/css; charset=utf-8",
	".js":  "text/javascript; charset=utf-8",
	".png": "image/png",
	".svg": "image/svg+xml",
}

func servePage(name string) func(w http.ResponseWriter, r *http.Request, _ *principal) {
	body, err := fs.ReadFile(web.FS, name)
	if err != nil {
		panic("gateway: page " + name + " is not embedded: " + err.Error())
	}
	return func(w http.ResponseWriter, r *http.Request, _ *principal) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	}
}

func serveStatic(w http.ResponseWriter, r *http.Request, _ *principal) {
	name := r.PathValue("file")
	ctype, ok := assetTypes[path.Ext(name)]
	if !ok || strings.HasPrefix(name, ".") {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
		return
	}
	body, err := fs.ReadFile(web.FS, "static/"+name)
	if err != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// qrScale is the size in pixels of one QR module in the enrollment image.
const qrScale = 8

// handleEnrollQR renders the enrollment link's otpauth URI as a QR code
// for authenticator apps. Only a link that does not exist costs a token of
// the enrollment rate limit, so reloading the page stays possible while
// guessing stays as slow as on the enrollment API.
func (g *Gateway) handleEnrollQR(w http.ResponseWriter, r *http.Request, _ *principal) {
	remote := clientAddr(r)
	if !g.limits.peek(enrollLimit, "enroll:"+limitAddr(remote)) {
		g.writeErr(w, r, errorf(http.StatusTooManyRequests, "too many attempts; wait a minute"))
		return
	}
	u, _, err := g.enrollUser(r)
	if err != nil {
		g.limits.allow(enrollLimit, "enroll:"+limitAddr(remote))
		g.writeErr(w, r, err)
		return
	}
	code, err := qr.Encode(identity.TOTPURI(g.org, u.Name, u.TOTPSecret), qr.M)
	if err != nil {
		g.writeErr(w, r, err)
		return
	}
	code.Scale = qrScale
	var buf bytes.Buffer
	if err := png.Encode(&buf, code.Image()); err != nil {
		g.writeErr(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}
