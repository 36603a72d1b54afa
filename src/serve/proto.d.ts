/** Schema files are embedded in the executable as text (`import x from "./a.proto" with { type: "text" }`). */
declare module "*.proto" {
  const text: string;
  export default text;
}
