// Allure 3 report configuration: one self-contained index.html, and the failure categories
// the suites' messages name (Allure 3 ignores categories.json, so they are repeated here).
export default {
  name: "netconform",
  plugins: {
    awesome: {
      options: { singleFile: true, reportName: "netconform", groupBy: ["suite", "subSuite"] },
    },
  },
  categories: [
    { name: "Security: unexpected allow", messageRegex: ".*SECURITY: unexpected allow.*", matchedStatuses: ["failed"] },
    { name: "Outage: unexpected drop", messageRegex: ".*OUTAGE: unexpected drop.*", matchedStatuses: ["failed"] },
    { name: "Timeout (dropped)", messageRegex: ".*observed TIMEOUT.*", matchedStatuses: ["failed"] },
    { name: "Refused", messageRegex: ".*observed REFUSED.*", matchedStatuses: ["failed"] },
    { name: "Unreachable", messageRegex: ".*observed UNREACHABLE.*", matchedStatuses: ["failed"] },
    { name: "Packet loss", messageRegex: ".*observed LOSS.*", matchedStatuses: ["failed"] },
    { name: "Probe error", messageRegex: ".*observed ERROR.*", matchedStatuses: ["failed", "broken"] },
    { name: "NXDOMAIN", messageRegex: ".*NXDOMAIN.*", matchedStatuses: ["failed"] },
    { name: "Policy drop", messageRegex: ".*policy.*", matchedStatuses: ["failed"] },
    { name: "Wrong weight", messageRegex: ".*weight.*", matchedStatuses: ["failed"] },
    { name: "Certificate", messageRegex: ".*certificate.*", matchedStatuses: ["failed"] },
  ],
};
