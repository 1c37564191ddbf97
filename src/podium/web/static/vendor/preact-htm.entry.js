// The dashboard's one vendored module: Preact (components, hooks) and htm (templates
// without a build step). Rebuilt by src/podium/web/vendor/README.md's command.
export { h, render, Fragment, createContext, createRef } from "preact";
export { useState, useEffect, useRef, useMemo, useCallback, useContext, useReducer, useLayoutEffect } from "preact/hooks";
import htm from "htm";
import { h } from "preact";
export const html = htm.bind(h);
