package uploader

import (
	"context"
	"log/slog"
)

// slogLogger is a thin helper over the configured logger.
type slogLogger struct{ l *slog.Logger }

func (l *slogLogger) debug(msg string, args ...any) {
	l.l.Log(context.Background(), slog.LevelDebug, "uploader: "+msg, args...)
}

func (l *slogLogger) warn(msg string, args ...any) {
	l.l.Log(context.Background(), slog.LevelWarn, "uploader: "+msg, args...)
}

func (l *slogLogger) error(msg string, args ...any) {
	l.l.Log(context.Background(), slog.LevelError, "uploader: "+msg, args...)
}
