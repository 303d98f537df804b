package review

import "net/http"

type cachedVideo struct{}

func (s *Server) handleVideo(w http.ResponseWriter, r *http.Request) {
	writeErr(w, http.StatusNotImplemented, "todo")
}
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	writeErr(w, http.StatusNotImplemented, "todo")
}
func (s *Server) handleEvidence(w http.ResponseWriter, r *http.Request) {
	writeErr(w, http.StatusNotImplemented, "todo")
}
