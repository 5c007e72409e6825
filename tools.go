//go:build tools

// Package tools pins the modules that tests, benchmarks and tools use, so that
// go.mod stays stable while several of them are written at once.
package tools

import (
	_ "github.com/HdrHistogram/hdrhistogram-go"
	_ "github.com/IBM/sarama"
	_ "github.com/chromedp/chromedp"
	_ "github.com/golang/snappy"
	_ "github.com/google/uuid"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/pierrec/lz4/v4"
	_ "github.com/segmentio/kafka-go"
	_ "github.com/twmb/franz-go/pkg/kadm"
	_ "github.com/twmb/franz-go/pkg/kfake"
	_ "github.com/twmb/franz-go/pkg/kgo"
	_ "github.com/twmb/franz-go/pkg/kmsg"
)
