// Architecture: the table is server-rendered; this module only translates it.
import { applyI18n } from "../i18n.js";
import "../messages/architecture.js";

applyI18n();
