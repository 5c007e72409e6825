package bench

// The e2e mode: consumers start at the partitions' current ends, then the producers run; the run
// is over when every record the producers had acknowledged has been received.

import (
	"context"
	"fmt"
	"io"
	"time"
)

func runE2E(ctx context.Context, cfg *config, stderr io.Writer) (*Result, error) {
	parts, err := ensureTopic(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// Exact starting offsets, not "the end": a consumer that resolved "the end" only after the
	// first records landed would miss them.
	ends, err := partitionOffsets(ctx, cfg, true)
	if err != nil {
		return nil, err
	}
	idle, err := maybeIdleConns(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer idle.close()

	c := &counters{}
	base := time.Now()
	cr := newConsumeRun(ctx, cfg, base, c, true)
	defer cr.cancel()
	wait, err := cr.start(parts, ends, nil)
	if err != nil {
		return nil, err
	}
	stop := make(chan struct{})
	progressDone := make(chan struct{})
	go func() { defer close(progressDone); progress(stderr, cfg.mode, cfg.progressInterval(), c, stop) }()

	pr := newProduceRun(cfg, base, c)
	prodErr := pr.run(ctx)
	// Records that failed never arrive, so wait only for the acknowledged ones.
	cr.setTarget(pr.c.produced.Load())
	wait()
	close(stop)
	<-progressDone

	res := &Result{Records: cr.measured.Load(), Bytes: cr.measuredBytes.Load()}
	if idle != nil {
		res.IdleConnections = len(idle.conns)
	}
	pr.fill(res)
	pr.hooks.fill(res)
	res.Errors += cr.errs.Load()
	if res.FirstError == "" {
		res.FirstError = cr.firstErr.String()
	}
	if missing := res.Produced - c.consumed.Load(); missing > 0 {
		res.Errors += missing
		if res.FirstError == "" {
			res.FirstError = fmt.Sprintf("%d acknowledged records never arrived", missing)
		}
	}
	res.EndToEndLatency = summarize(cr.lat)
	res.finish(cfg, time.Duration(cr.lastRecv.Load())-cfg.warmup)
	if prodErr == nil {
		prodErr = ctx.Err()
	}
	return res, resultError(prodErr, res)
}
