package apiserver

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// maxRequestBodyBytes is upstream's limit for a request body (3 MiB).
const maxRequestBodyBytes = 3 * 1024 * 1024

const (
	mediaJSON     = "application/json"
	mediaYAML     = "application/yaml"
	mediaProtobuf = "application/vnd.kubernetes.protobuf"
)

// readBody reads the whole request body, refusing more than 3 MiB with
// upstream's 413 before decoding anything: at once when Content-Length
// announces more, else as soon as the 3 MiB + 1st byte arrives.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > maxRequestBodyBytes {
		return nil, errBodyTooLarge()
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBodyBytes+1))
	if isBodyReadTimeout(err) {
		return nil, errRequestTimeout()
	}
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("reading request body: %v", err))
	}
	if len(body) > maxRequestBodyBytes {
		return nil, errBodyTooLarge()
	}
	return body, nil
}

// errBodyTooLarge is upstream's 413 for a body over the limit:
// "Request entity too large: limit is 3145728".
func errBodyTooLarge() error {
	return apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", maxRequestBodyBytes))
}

// errUnsupportedMediaType is upstream's negotiation error: a Status
// without details.
func errUnsupportedMediaType(_ string, accepted []string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure,
		Code:   http.StatusUnsupportedMediaType,
		Reason: metav1.StatusReasonUnsupportedMediaType,
		Message: fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s",
			strings.Join(accepted, ", ")),
	}}
}

// requestMediaType returns the media type of the body; JSON when unset.
func requestMediaType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return mediaJSON
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ct
	}
	return mt
}

// fieldValidation returns the request's fieldValidation directive; Warn
// when absent, like upstream.
func fieldValidation(r *http.Request) (string, error) {
	v := r.URL.Query().Get("fieldValidation")
	switch v {
	case "":
		return metav1.FieldValidationWarn, nil
	case metav1.FieldValidationIgnore, metav1.FieldValidationWarn, metav1.FieldValidationStrict:
		return v, nil
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("fieldValidation must be one of %q, %q or %q, not %q",
		metav1.FieldValidationIgnore, metav1.FieldValidationWarn, metav1.FieldValidationStrict, v))
}

// decodeObject decodes body of media type mediaType into a new object of
// gvk, applying the fieldValidation directive: Strict fails on unknown or
// duplicate fields, Warn adds a Warning header per problem.
func (s *Server) decodeObject(w http.ResponseWriter, r *http.Request, body []byte, mediaType string, gvk schema.GroupVersionKind) (runtime.Object, error) {
	validation, err := fieldValidation(r)
	if err != nil {
		return nil, err
	}
	info, ok := runtime.SerializerInfoForMediaType(s.codecs.SupportedMediaTypes(), mediaType)
	if !ok {
		return nil, errUnsupportedMediaType(mediaType, s.supportedBodyMediaTypes())
	}
	decoder := info.Serializer
	if validation != metav1.FieldValidationIgnore && info.StrictSerializer != nil {
		decoder = info.StrictSerializer
	}
	into, err := s.scheme.New(gvk)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	obj, actual, err := decoder.Decode(body, &gvk, into)
	if err != nil {
		strictErr, isStrict := runtime.AsStrictDecodingError(err)
		if !isStrict || obj == nil || validation == metav1.FieldValidationStrict {
			return nil, decodeError(err, gvk.Kind, actual, body)
		}
		for _, e := range strictErr.Errors() {
			addWarning(w, e.Error())
		}
	}
	if actual != nil && (actual.Kind != gvk.Kind || actual.GroupVersion() != gvk.GroupVersion()) {
		if actual.GroupVersion() != gvk.GroupVersion() {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)",
				actual.GroupVersion(), gvk.GroupVersion()))
		}
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the kind in the data (%s) does not match the expected kind (%s)", actual.Kind, gvk.Kind))
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return obj, nil
}

// decodeError is upstream's transformDecodeError: when the body's kind
// was read (the error is about its content), the message names it;
// otherwise (not JSON, YAML or protobuf at all) it shows the start of the
// body. intoKind is the kind the URL wants.
func decodeError(err error, intoKind string, actual *schema.GroupVersionKind, body []byte) error {
	if actual != nil && actual.Kind != "" {
		return apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v", actual.Kind, actual.Version, intoKind, err))
	}
	return apierrors.NewBadRequest(fmt.Sprintf("the object provided is unrecognized (must be of type %s): %v (%s)", intoKind, err, summarizeBody(body, 30)))
}

// summarizeBody is upstream's summary of a body in decode errors: its
// first maxLength bytes, as text when it looks like JSON, else in hex.
func summarizeBody(body []byte, maxLength int) string {
	suffix := ""
	if len(body) > maxLength {
		body, suffix = body[:maxLength], " ..."
	}
	switch {
	case len(body) == 0:
		return "<empty>"
	case body[0] == '{':
		return string(body) + suffix
	}
	return hex.EncodeToString(body) + suffix
}

// readObject reads and decodes the request body as an object of gvk.
func (s *Server) readObject(w http.ResponseWriter, r *http.Request, gvk schema.GroupVersionKind) (runtime.Object, error) {
	mediaType := requestMediaType(r)
	if _, ok := runtime.SerializerInfoForMediaType(s.codecs.SupportedMediaTypes(), mediaType); !ok {
		return nil, errUnsupportedMediaType(mediaType, s.supportedBodyMediaTypes())
	}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	return s.decodeObject(w, r, body, mediaType, gvk)
}

func (s *Server) supportedBodyMediaTypes() []string {
	var out []string
	for _, info := range s.codecs.SupportedMediaTypes() {
		out = append(out, info.MediaType)
	}
	return out
}

// addWarning adds an RFC 7234 warning header, which kubectl prints as
// "Warning: <text>"; once per text, as upstream's warning recorder.
func addWarning(w http.ResponseWriter, text string) {
	header := fmt.Sprintf("299 - %q", text)
	if !slices.Contains(w.Header().Values("Warning"), header) {
		w.Header().Add("Warning", header)
	}
}

// responseFormat is what the client asked to get back.
type responseFormat struct {
	mediaType string
	// as is "", "Table", "PartialObjectMetadata" or
	// "PartialObjectMetadataList".
	as string
}

// errNotAcceptable is upstream's negotiation error: a Status without
// details.
func errNotAcceptable(accepted []string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusNotAcceptable,
		Reason:  metav1.StatusReasonNotAcceptable,
		Message: fmt.Sprintf("only the following media types are accepted: %s", strings.Join(accepted, ", ")),
	}}
}

// negotiate picks the answer's format from the Accept header: the first
// supported media type of the highest quality, as upstream. Typed client-go
// clients send "application/vnd.kubernetes.protobuf,application/json" and
// so get protobuf; Table and PartialObjectMetadata are JSON only.
func negotiate(r *http.Request) (responseFormat, error) {
	accept := r.Header.Get("Accept")
	if strings.TrimSpace(accept) == "" {
		return responseFormat{mediaType: mediaJSON}, nil
	}
	best, bestQ := responseFormat{}, 0.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(v, 64); err != nil {
				continue
			}
		}
		if q <= bestQ {
			continue
		}
		var f responseFormat
		if as := params["as"]; as != "" {
			if params["g"] != "meta.k8s.io" || params["v"] != "v1" || mt != mediaJSON {
				continue
			}
			switch as {
			case "Table", "PartialObjectMetadata", "PartialObjectMetadataList":
				f = responseFormat{mediaType: mediaJSON, as: as}
			default:
				continue
			}
		} else {
			switch mt {
			case mediaJSON, "*/*", "application/*":
				f = responseFormat{mediaType: mediaJSON}
			case mediaYAML, mediaProtobuf:
				f = responseFormat{mediaType: mt}
			default:
				continue
			}
		}
		best, bestQ = f, q
	}
	if bestQ == 0 {
		return responseFormat{}, errNotAcceptable([]string{mediaJSON, mediaYAML, mediaProtobuf})
	}
	return best, nil
}

// protobufMarshaler is what the protobuf serializer needs of an object:
// every built-in type has it, Tables and unstructured objects do not.
type protobufMarshaler interface {
	Marshal() ([]byte, error)
}

// encode writes obj, whose TypeMeta must be set, in mediaType.
func (s *Server) encode(w http.ResponseWriter, code int, mediaType string, obj runtime.Object) {
	info, ok := runtime.SerializerInfoForMediaType(s.codecs.SupportedMediaTypes(), mediaType)
	if !ok {
		info, _ = runtime.SerializerInfoForMediaType(s.codecs.SupportedMediaTypes(), mediaJSON)
		mediaType = mediaJSON
	}
	if _, ok := obj.(protobufMarshaler); !ok && mediaType == mediaProtobuf {
		info, _ = runtime.SerializerInfoForMediaType(s.codecs.SupportedMediaTypes(), mediaJSON)
		mediaType = mediaJSON
	}
	var buf bytes.Buffer
	if err := info.Serializer.Encode(obj, &buf); err != nil {
		writeStatus(w, statusFor(apierrors.NewInternalError(err)))
		return
	}
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// encodeAs writes obj as JSON under exactly contentType.
func (s *Server) encodeAs(w http.ResponseWriter, code int, contentType string, obj any) {
	body, err := json.Marshal(obj)
	if err != nil {
		writeStatus(w, statusFor(apierrors.NewInternalError(err)))
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// writeJSON writes v as application/json.
func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeStatus(w, statusFor(apierrors.NewInternalError(err)))
		return
	}
	w.Header().Set("Content-Type", mediaJSON)
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
