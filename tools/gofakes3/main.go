// Command gofakes3 serves gofakes3's in-memory S3 backend on loopback for kiosk-pipelines'
// benchmarks (benchmarks/cleanup.py). gofakes3 is an S3-protocol server in Go: its listing seeks
// a skip list (O(log n + page) per 1000-key page, where moto rescans and sorts the whole bucket),
// and it implements DeleteObjects. Upstream's cmd/gofakes3 has no way to create objects with an
// old LastModified, which a retention benchmark needs, hence this small main with one extra route.
//
//	gofakes3 [-host 127.0.0.1:0] [-latency 30ms]
//
// prints its endpoint (http://127.0.0.1:PORT) on stdout's first line, then serves until killed.
// With -latency, a second listener on the same host serves the same backend after holding each
// request that long (a cross-region bucket), and its endpoint is stdout's second line. The delay
// costs no CPU, so a benchmark comparing the two endpoints measures the latency and nothing else
// (a proxy in the benchmark's process would also take CPU from the code under test).
//
// POST /_kiosk/seed?bucket=B&age=72h&size=10 with one key per line as the body creates bucket B
// if needed and puts each key with `size` bytes, stamped `age` ago. Bucket names cannot start
// with '_', so the route cannot shadow a bucket. While a seed runs, S3 requests wait, so that no
// request is stamped with the shifted clock.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

var gmt = time.FixedZone("GMT", 0) // as gofakes3.DefaultTimeSource

// shiftedClock is the backend's clock: the real time plus an offset that only a seed sets.
type shiftedClock struct{ offset atomic.Int64 }

func (c *shiftedClock) Now() time.Time {
	return time.Now().Add(time.Duration(c.offset.Load())).In(gmt)
}

func (c *shiftedClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

type server struct {
	backend *s3mem.Backend
	clock   *shiftedClock
	s3      http.Handler
	gate    sync.RWMutex // S3 requests share it; a seed holds it alone
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_kiosk/seed" {
		s.seed(w, r)
		return
	}
	s.gate.RLock()
	defer s.gate.RUnlock()
	s.s3.ServeHTTP(w, r)
}

func (s *server) seed(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	bucket := q.Get("bucket")
	age, err := time.ParseDuration(q.Get("age"))
	if err != nil || bucket == "" || r.Method != http.MethodPost {
		http.Error(w, "usage: POST /_kiosk/seed?bucket=B&age=72h[&size=N] with one key per line", http.StatusBadRequest)
		return
	}
	size, err := strconv.Atoi(q.Get("size"))
	if err != nil {
		size = 10
	}
	body := bytes.Repeat([]byte("0"), size)

	s.gate.Lock()
	defer s.gate.Unlock()
	s.clock.offset.Store(int64(-age))
	defer s.clock.offset.Store(0)
	if err := s.backend.CreateBucket(bucket); err != nil && !gofakes3.IsAlreadyExists(err) {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	count := 0
	lines := bufio.NewScanner(r.Body)
	lines.Buffer(make([]byte, 64*1024), 64*1024)
	for lines.Scan() {
		key := strings.TrimSpace(lines.Text())
		if key == "" {
			continue
		}
		meta := map[string]string{
			"Content-Type":  "application/octet-stream",
			"Last-Modified": s.clock.Now().Format(http.TimeFormat),
		}
		if _, err := s.backend.PutObject(bucket, key, meta, bytes.NewReader(body), int64(size), nil); err != nil {
			http.Error(w, fmt.Sprintf("put %s: %v", key, err), http.StatusInternalServerError)
			return
		}
		count++
	}
	if err := lines.Err(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%d\n", count)
}

func main() {
	host := flag.String("host", "127.0.0.1:0", "address to listen on (port 0: any free port)")
	latency := flag.Duration("latency", 0, "also serve on a second port, holding each request this long")
	flag.Parse()

	clock := &shiftedClock{}
	backend := s3mem.New(s3mem.WithTimeSource(clock))
	faker := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog()))
	listener, err := net.Listen("tcp", *host)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "http://%s\n", listener.Addr())
	handler := &server{backend: backend, clock: clock, s3: faker.Server()}
	if *latency > 0 {
		slow, err := net.Listen("tcp", *host)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(os.Stdout, "http://%s\n", slow.Addr())
		go func() { log.Fatal(http.Serve(slow, delayed{handler, *latency})) }()
	}
	log.Fatal(http.Serve(listener, handler))
}

// delayed holds each request before the S3 handler sees it.
type delayed struct {
	next  http.Handler
	delay time.Duration
}

func (d delayed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	time.Sleep(d.delay)
	d.next.ServeHTTP(w, r)
}
