package githubfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// HookDelivery is one delivery the fake made to an app's webhook URL, as GET /app/hook/deliveries lists it:
// GitHub records every attempt, a redelivery as a new delivery with the same GUID.
type HookDelivery struct {
	ID          int64
	GUID        string
	Event       string
	Action      string
	Redelivery  bool
	DeliveredAt time.Time
	// StatusCode is what the bot answered; 0 when the fake could not connect (the bot was down).
	StatusCode     int
	InstallationID int64
	RepositoryID   int64

	header http.Header
	body   []byte
}

// OK reports whether the bot accepted the delivery (a 2xx answer).
func (d HookDelivery) OK() bool { return d.StatusCode >= 200 && d.StatusCode < 300 }

// status is GitHub's text for the outcome [unverified for a refused connection: GitHub shows its own wording].
func (d HookDelivery) status() string {
	switch {
	case d.OK():
		return "OK"
	case d.StatusCode == 0:
		return "failed to connect to host"
	}
	return "Invalid HTTP Response: " + strconv.Itoa(d.StatusCode)
}

type hookState struct {
	url        string
	deliveries []*HookDelivery // oldest first
}

// SetHookURL sets where the app's webhooks go (the app's webhook URL; a restarted bot may listen elsewhere).
func (f *Fake) SetHookURL(appID int64, url string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook(appID).url = url
}

// hook is the app's webhook state. Callers hold f.mu.
func (f *Fake) hook(appID int64) *hookState {
	if f.hooks == nil {
		f.hooks = map[int64]*hookState{}
	}
	h, ok := f.hooks[appID]
	if !ok {
		h = &hookState{}
		f.hooks[appID] = h
	}
	return h
}

// SendWebhook delivers a webhook of the app as GitHub does: POSTed to the app's webhook URL with the headers
// given (X-GitHub-Delivery is its GUID), recorded with the answer's status code, or 0 when the bot could not be
// reached. GitHub does not retry a failed delivery.
func (f *Fake) SendWebhook(appID int64, header http.Header, body []byte) HookDelivery {
	var p struct {
		Action       string `json:"action"`
		Installation struct {
			ID int64 `json:"id"`
		} `json:"installation"`
		Repository struct {
			ID int64 `json:"id"`
		} `json:"repository"`
	}
	_ = json.Unmarshal(body, &p)
	return f.send(appID, &HookDelivery{
		GUID: header.Get("X-GitHub-Delivery"), Event: header.Get("X-GitHub-Event"), Action: p.Action,
		InstallationID: p.Installation.ID, RepositoryID: p.Repository.ID, header: header.Clone(), body: body,
	})
}

func (f *Fake) send(appID int64, d *HookDelivery) HookDelivery {
	f.mu.Lock()
	url := f.hook(appID).url
	d.ID, d.DeliveredAt = f.newID(), f.now
	f.mu.Unlock()
	d.StatusCode = post(url, d.header, d.body)
	f.mu.Lock()
	h := f.hook(appID)
	h.deliveries = append(h.deliveries, d)
	f.mu.Unlock()
	return *d
}

// post sends a delivery and returns the answer's status code, 0 when there was none.
func post(url string, header http.Header, body []byte) int {
	if url == "" {
		return 0
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header = header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// HookDeliveries are the app's deliveries, oldest first.
func (f *Fake) HookDeliveries(appID int64) []HookDelivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []HookDelivery
	for _, d := range f.hook(appID).deliveries {
		out = append(out, *d)
	}
	return out
}

func (d *HookDelivery) json() map[string]any {
	return map[string]any{
		"id": d.ID, "guid": d.GUID, "delivered_at": d.DeliveredAt.UTC().Format(time.RFC3339), "redelivery": d.Redelivery,
		"duration": 0.01, "status": d.status(), "status_code": d.StatusCode, "event": d.Event, "action": d.Action,
		"installation_id": d.InstallationID, "repository_id": d.RepositoryID,
	}
}

// hookDeliveriesPerPage is GitHub's default page size; per_page may ask for up to 100.
const hookDeliveriesPerPage = 30

// handleListHookDeliveries lists the app's deliveries newest first, paginated by cursor (the Link header's
// rel="next" carries it), authenticated as the app.
func (f *Fake) handleListHookDeliveries(w http.ResponseWriter, r *http.Request) {
	app, err := f.appFromJWT(r)
	if err != nil {
		writeError(w, http.StatusUnauthorized, err.Error(), "https://docs.github.com/rest/apps/webhooks#list-deliveries-for-an-app-webhook")
		return
	}
	perPage := hookDeliveriesPerPage
	if n, err := strconv.Atoi(r.URL.Query().Get("per_page")); err == nil && n > 0 {
		perPage = min(n, 100)
	}
	f.mu.Lock()
	all := append([]*HookDelivery(nil), f.hook(app.id).deliveries...)
	f.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].ID > all[j].ID })
	start := 0
	if c := r.URL.Query().Get("cursor"); c != "" {
		before, err := strconv.ParseInt(c, 10, 64)
		if err != nil {
			validationFailed(w, "https://docs.github.com/rest/apps/webhooks#list-deliveries-for-an-app-webhook")
			return
		}
		for start < len(all) && all[start].ID >= before {
			start++
		}
	}
	end := min(start+perPage, len(all))
	page := []map[string]any{}
	for _, d := range all[start:end] {
		page = append(page, d.json())
	}
	if end < len(all) {
		next := fmt.Sprintf("%s%s/app/hook/deliveries?per_page=%d&cursor=%d", f.server.URL, apiPrefix, perPage, all[end-1].ID)
		w.Header().Set("Link", "<"+next+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, page)
}

// handleRedeliverHookDelivery sends a recorded delivery again to the app's webhook URL as GitHub does: the same
// GUID, headers and body, recorded as a new delivery marked as a redelivery. It answers 202 before the outcome
// is known.
func (f *Fake) handleRedeliverHookDelivery(w http.ResponseWriter, r *http.Request) {
	app, err := f.appFromJWT(r)
	if err != nil {
		writeError(w, http.StatusUnauthorized, err.Error(), "https://docs.github.com/rest/apps/webhooks#redeliver-a-delivery-for-an-app-webhook")
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	f.mu.Lock()
	var orig *HookDelivery
	for _, d := range f.hook(app.id).deliveries {
		if d.ID == id {
			orig = d
		}
	}
	f.mu.Unlock()
	if orig == nil {
		notFound(w)
		return
	}
	again := *orig
	again.Redelivery = true
	f.send(app.id, &again) // synchronous, unlike GitHub's queue: the test sees the outcome at once
	writeJSON(w, http.StatusAccepted, map[string]any{})
}
