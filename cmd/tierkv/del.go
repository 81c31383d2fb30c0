package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func delCommand() *cli.Command {
	return &cli.Command{
		Name:      "del",
		Usage:     "delete a key from the local store",
		ArgsUsage: "KEY",
		Description: "Opens the store in --dir from its local state, deletes KEY (deleting an absent key\n" +
			"is not an error) and closes it. The change is local until 'tierkv snapshot'.",
		Action: runDel,
	}
}

func runDel(c *cli.Context) (err error) {
	if c.NArg() != 1 {
		return usagef("del takes one argument, KEY")
	}
	key, err := decodeToken(c.Args().First())
	if err != nil {
		return usagef("%v", err)
	}
	g, err := loadGlobals(c)
	if err != nil {
		return err
	}
	s, err := openLocal(c, g, false, true)
	if err != nil {
		return err
	}
	defer closeLocal(s, &err)
	if err := s.Delete(key); err != nil {
		return fmt.Errorf("del %s: %w", displayValue(key), err)
	}
	return nil
}
