package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tierkv/tierkv/objstore"
	"github.com/urfave/cli/v2"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the operation failed (remote, corruption, verify found problems...)
	exitUsage   = 2 // the command line (or a batch line) is wrong
)

// newApp builds the command-line application. Every command writes through
// app.Writer and app.ErrWriter and reads app.Reader, so tests run it
// in-process with buffers.
func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "tierkv",
		Usage: "inspect, restore and operate tierkv stores kept in an object store",
		Description: "A remote is an object-store URL: file:///abs/path, s3://bucket/prefix?region=...&endpoint=...,\n" +
			"minio://host:port/bucket/prefix?secure=false. Credentials come from the environment\n" +
			"(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or MINIO_ACCESS_KEY/MINIO_SECRET_KEY), never from flags.\n" +
			"Global options may be given before or after the command name, and a command's options\n" +
			"before or after its arguments; put -- before arguments that start with -.\n\n" + engineKinds(),
		Reader:          stdin,
		Writer:          stdout,
		ErrWriter:       stderr,
		Flags:           globalFlags(),
		HideHelpCommand: true,
		// "--meta src=a,b" is one value, not two.
		DisableSliceFlagSeparator: true,
		// Errors are printed and mapped to exit statuses by run, never by
		// urfave/cli (whose default handler calls os.Exit).
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("unknown command %q: run 'tierkv --help' for the list", c.Args().First())
			}
			_ = cli.ShowAppHelp(c)
			return usagef("no command given: run 'tierkv --help'")
		},
	}
	app.Commands = []*cli.Command{
		versionsCommand(),
		showCommand(),
		restoreCommand(),
		verifyCommand(),
		forgetCommand(),
		gcCommand(),
		getCommand(),
		putCommand(),
		delCommand(),
		snapshotCommand(),
		batchCommand(),
		demoCommand(),
		demoWorkerCommand(),
	}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = onUsageError
		if cmd.Description != "" {
			cmd.Description += "\n\n"
		}
		cmd.Description += "Global options (--remote, --dir, --json, ...; see 'tierkv --help') may be given\n" +
			"before or after the command name."
	}
	return app
}

// run executes the command line args and returns the process exit status.
// Errors are printed as one line on stderr: "tierkv: what failed: what to try".
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	err := app.RunContext(ctx, normalizeArgs(app, args))
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "tierkv: "+errorLine(err))
	var ue *usageError
	if errors.As(err, &ue) || errors.Is(err, objstore.ErrInvalidURL) || isParamError(err) {
		return exitUsage
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailure
}

// onUsageError turns flag-parsing errors into usage errors (exit status 2).
func onUsageError(c *cli.Context, err error, isSubcommand bool) error {
	cmd := "tierkv"
	if isSubcommand && c.Command != nil {
		cmd = "tierkv " + c.Command.Name
	}
	return usagef("%v: run '%s --help'", err, cmd)
}

// errorLine renders err on one line, with a hint of what to try when the
// error is of a known class, and with every secret from the environment
// replaced.
func errorLine(err error) string {
	msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
	if h := hintFor(err); h != "" && !strings.Contains(msg, h) {
		msg += ": " + h
	}
	return scrubSecrets(msg)
}
