package events

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/relayd/relayd/pkg/wire"
)

func TestHubNewestOnly(t *testing.T) {
	h := NewHub()
	h.Publish(wire.KindCatalog, []byte(`{"generation":1}`))
	s := h.Subscribe(Client{ID: "a"})
	defer s.Close()
	<-s.Wake()
	if got := s.Next(); len(got) != 1 || string(got[0].Data) != `{"generation":1}` {
		t.Fatalf("first Next = %+v, want the current generation", got)
	}
	if got := s.Next(); len(got) != 0 {
		t.Fatalf("second Next = %+v, want nothing new", got)
	}
	// Three publishes while the subscriber is busy: it wakes once and
	// gets the newest of each kind, in publish order.
	h.Publish(wire.KindCatalog, []byte(`{"generation":2}`))
	h.Publish(wire.KindRelays, []byte(`{"relays":[]}`))
	h.Publish(wire.KindCatalog, []byte(`{"generation":3}`))
	<-s.Wake()
	got := s.Next()
	if len(got) != 2 || got[0].Kind != wire.KindRelays || string(got[1].Data) != `{"generation":3}` {
		t.Fatalf("Next = %+v, want relays then generation 3", got)
	}
	select {
	case <-s.Wake():
		t.Fatal("woken again with nothing new")
	default:
	}
	// The same state again is not news.
	h.Publish(wire.KindCatalog, []byte(`{"generation":3}`))
	select {
	case <-s.Wake():
		t.Fatal("woken by a publish that changed nothing")
	default:
	}
}

func TestHubCountAndClose(t *testing.T) {
	h := NewHub()
	var subs []*Sub
	for i := range 5 {
		subs = append(subs, h.Subscribe(Client{ID: fmt.Sprint(i), Relay: i == 0}))
	}
	if a, r := h.Count(); a != 4 || r != 1 {
		t.Fatalf("Count = %d agents, %d relays; want 4, 1", a, r)
	}
	for _, s := range subs {
		s.Close()
	}
	if a, r := h.Count(); a != 0 || r != 0 || len(h.Clients()) != 0 {
		t.Fatalf("after Close: %d agents, %d relays", a, r)
	}
}

func TestEncodeReadRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	in := []Event{{ID: 1, Kind: wire.KindCatalog, Data: []byte(`{"generation":7}`)}, {ID: 2, Kind: wire.KindRelays, Data: []byte(`{}`)}}
	for _, ev := range in {
		if err := Encode(&buf, ev); err != nil {
			t.Fatal(err)
		}
		buf.WriteString(Ping)
	}
	r := NewReader(&buf)
	lines := 0
	r.Activity = func() { lines++ }
	for _, want := range in {
		got, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != want.ID || got.Kind != want.Kind || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("read %+v, want %+v", got, want)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("at the end: %v, want EOF", err)
	}
	if lines == 0 {
		t.Fatal("Activity never called")
	}
	g, err := wire.ParseGeneration(in[0].Data)
	if err != nil || g.Generation != 7 {
		t.Fatalf("ParseGeneration = %+v, %v", g, err)
	}
}

func TestReaderEdges(t *testing.T) {
	cases := []struct {
		name, in string
		want     string // Kind:Data of the first event, or the error
	}{
		{"crlf", "event: catalog\r\ndata: {}\r\n\r\n", "catalog:{}"},
		{"no event name", "data: x\n\n", "message:x"},
		{"multi-line data", "event: e\ndata: a\ndata: b\n\n", "e:a\nb"},
		{"comments skipped", ": hi\n\n: again\nevent: e\ndata: d\n\n", "e:d"},
		{"unknown field skipped", "retry: 10\nevent: e\ndata: d\n\n", "e:d"},
		{"cut inside an event", "event: e\ndata: d\n", "unexpected EOF"},
		{"cut inside a line", "event: e\ndat", "unexpected EOF"},
		{"too long", "data: " + strings.Repeat("x", MaxLine+1) + "\n\n", ErrTooLong.Error()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := NewReader(strings.NewReader(tc.in)).Next()
			got := ev.Kind + ":" + string(ev.Data)
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	if err := Encode(io.Discard, Event{Kind: "e", Data: []byte("a\nb")}); err == nil {
		t.Fatal("Encode accepted data with a newline")
	}
	if _, err := wire.ParseGeneration([]byte(`{"generation":0}`)); err == nil {
		t.Fatal("ParseGeneration accepted generation 0")
	}
}

func FuzzReader(f *testing.F) {
	f.Add("event: catalog\ndata: {\"generation\":1}\n\n")
	f.Add(": ping\n\nid: 9\nevent: e\ndata: a\ndata: b\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		r := NewReader(strings.NewReader(s))
		for range 1000 {
			ev, err := r.Next()
			if err != nil {
				if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrTooLong) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if ev.Kind == "" {
				t.Fatal("event without a kind")
			}
		}
	})
}
